<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's export transform: a PCC (the
     person-details the request's source-sel selects, already filtered by its
     fields) into a contact of a service shaped like Microsoft Graph, written
     in the XML representation of JSON that xdmsd turns into the JSON body
     (docs/operations.md, "Connecting a JSON REST service with OAuth 2.0").
     The adapter's URL names the contact, its export method PATCH. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:p="urn:oma:xml:cab:pcc"
                xmlns="http://www.w3.org/2005/xpath-functions"
                exclude-result-prefixes="p">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:apply-templates select="p:pcc/p:person-details[1]"/>
  </xsl:template>

  <xsl:template name="number">
    <xsl:param name="u"/>
    <xsl:choose>
      <xsl:when test="starts-with($u, 'tel:')"><xsl:value-of select="substring($u, 5)"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$u"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="p:person-details">
    <xsl:variable name="n" select="p:name/p:name-entry[1]"/>
    <xsl:variable name="tels" select="p:comm-addr/p:tel"/>
    <xsl:variable name="mails" select="p:comm-addr/p:uri-entry[starts-with(normalize-space(p:addr-uri), 'mailto:')]"/>
    <map>
      <xsl:for-each select="$n/p:display-name[1]"><string key="displayName"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:for-each select="($n/p:given | $n/p:first)[1]"><string key="givenName"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:for-each select="$n/p:middle[1]"><string key="middleName"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:for-each select="$n/p:family[1]"><string key="surname"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:if test="$mails">
        <array key="emailAddresses">
          <xsl:for-each select="$mails">
            <map><string key="address"><xsl:value-of select="substring(normalize-space(p:addr-uri), 8)"/></string></map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="$tels">
        <array key="businessPhones">
          <xsl:for-each select="$tels[@tel-type = 'Work' or @tel-type = 'Fixed' or @tel-type = 'Other' or not(@tel-type)]">
            <string><xsl:call-template name="number"><xsl:with-param name="u" select="normalize-space(p:tel-nb/p:tel-string)"/></xsl:call-template></string>
          </xsl:for-each>
        </array>
        <array key="homePhones">
          <xsl:for-each select="$tels[@tel-type = 'Home']">
            <string><xsl:call-template name="number"><xsl:with-param name="u" select="normalize-space(p:tel-nb/p:tel-string)"/></xsl:call-template></string>
          </xsl:for-each>
        </array>
        <xsl:for-each select="$tels[@tel-type = 'Mobile'][1]">
          <string key="mobilePhone"><xsl:call-template name="number"><xsl:with-param name="u" select="normalize-space(p:tel-nb/p:tel-string)"/></xsl:call-template></string>
        </xsl:for-each>
      </xsl:if>
      <xsl:for-each select="p:career/p:employer[1]"><string key="companyName"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:for-each select="p:career/p:duty[1]"><string key="jobTitle"><xsl:value-of select="."/></string></xsl:for-each>
      <xsl:for-each select="p:birth/p:birth-date/p:date[string-length(normalize-space(.)) = 10][1]">
        <string key="birthday"><xsl:value-of select="normalize-space(.)"/>T00:00:00Z</string>
      </xsl:for-each>
    </map>
  </xsl:template>
</xsl:stylesheet>
