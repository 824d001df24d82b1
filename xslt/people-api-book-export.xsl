<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's address-book export: one
     contact as a Person of a service shaped like the Google People API
     (docs/operations.md, "Address books from a JSON REST service").

     Input:  <entry xmlns="urn:xdmsd:xml:iwf-book"> with @id (the
             resourceName) and @etag when the person exists at the 3rd
             party, holding the contact as an xCard <vcard> (RFC 6351, as
             pcc2xcard.xsl writes it).
     Output: the Person in the XML representation of JSON, which xdmsd
             sends as the JSON body of people.createContact (POST) or
             people.updateContact (PATCH, with the etag the update needs).
             Photos are not written (the People API takes them apart). -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:b="urn:xdmsd:xml:iwf-book"
                xmlns:v="urn:ietf:params:xml:ns:vcard-4.0"
                xmlns="http://www.w3.org/2005/xpath-functions"
                exclude-result-prefixes="b v">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:if test="not(b:entry/v:vcard)">
      <xsl:message terminate="yes">no xCard vcard to export</xsl:message>
    </xsl:if>
    <xsl:apply-templates select="b:entry/v:vcard"/>
  </xsl:template>

  <!-- The value of a property: its uri without tel:/mailto:, or its text. -->
  <xsl:template name="value">
    <xsl:variable name="u" select="normalize-space(v:uri | v:text)"/>
    <xsl:choose>
      <xsl:when test="starts-with($u, 'tel:')"><xsl:value-of select="substring($u, 5)"/></xsl:when>
      <xsl:when test="starts-with($u, 'mailto:')"><xsl:value-of select="substring($u, 8)"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$u"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="v:vcard">
    <map>
      <xsl:if test="../@id != ''"><string key="resourceName"><xsl:value-of select="../@id"/></string></xsl:if>
      <xsl:if test="../@etag != ''"><string key="etag"><xsl:value-of select="../@etag"/></string></xsl:if>
      <xsl:if test="v:n or v:fn">
        <array key="names">
          <map>
            <xsl:for-each select="v:fn[1]"><string key="displayName"><xsl:value-of select="v:text"/></string></xsl:for-each>
            <xsl:for-each select="v:n[1]/v:given[. != ''][1]"><string key="givenName"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="v:n[1]/v:additional[. != ''][1]"><string key="middleName"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="v:n[1]/v:surname[. != ''][1]"><string key="familyName"><xsl:value-of select="."/></string></xsl:for-each>
          </map>
        </array>
      </xsl:if>
      <xsl:if test="v:email">
        <array key="emailAddresses">
          <xsl:for-each select="v:email">
            <map>
              <string key="value"><xsl:call-template name="value"/></string>
              <xsl:for-each select="v:parameters/v:type/v:text[. = 'home' or . = 'work'][1]"><string key="type"><xsl:value-of select="."/></string></xsl:for-each>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="v:tel">
        <array key="phoneNumbers">
          <xsl:for-each select="v:tel">
            <xsl:variable name="t" select="v:parameters/v:type/v:text"/>
            <map>
              <string key="value"><xsl:call-template name="value"/></string>
              <string key="type">
                <xsl:choose>
                  <xsl:when test="$t = 'cell'">mobile</xsl:when>
                  <xsl:when test="$t = 'fax'">otherFax</xsl:when>
                  <xsl:when test="$t = 'work'">work</xsl:when>
                  <xsl:when test="$t = 'home'">home</xsl:when>
                  <xsl:otherwise>other</xsl:otherwise>
                </xsl:choose>
              </string>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="v:adr">
        <array key="addresses">
          <xsl:for-each select="v:adr">
            <map>
              <xsl:if test="normalize-space(v:street) != ''"><string key="streetAddress"><xsl:value-of select="normalize-space(v:street)"/></string></xsl:if>
              <xsl:if test="normalize-space(v:locality) != ''"><string key="city"><xsl:value-of select="normalize-space(v:locality)"/></string></xsl:if>
              <xsl:if test="normalize-space(v:region) != ''"><string key="region"><xsl:value-of select="normalize-space(v:region)"/></string></xsl:if>
              <xsl:if test="normalize-space(v:code) != ''"><string key="postalCode"><xsl:value-of select="normalize-space(v:code)"/></string></xsl:if>
              <xsl:if test="normalize-space(v:country) != ''"><string key="country"><xsl:value-of select="normalize-space(v:country)"/></string></xsl:if>
              <xsl:for-each select="v:parameters/v:type/v:text[. = 'home' or . = 'work'][1]"><string key="type"><xsl:value-of select="."/></string></xsl:for-each>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="v:org or v:title">
        <array key="organizations">
          <map>
            <xsl:for-each select="v:org[1]"><string key="name"><xsl:value-of select="v:text[1]"/></string></xsl:for-each>
            <xsl:for-each select="v:title[1]"><string key="title"><xsl:value-of select="v:text"/></string></xsl:for-each>
          </map>
        </array>
      </xsl:if>
      <!-- 19850412 (or 1985-04-12), or - -0412 without a year -->
      <xsl:for-each select="v:bday[v:date][1]">
        <xsl:variable name="d" select="translate(normalize-space(v:date), '-', '')"/>
        <array key="birthdays">
          <map>
            <map key="date">
              <xsl:choose>
                <xsl:when test="string-length($d) = 8">
                  <number key="year"><xsl:value-of select="number(substring($d, 1, 4))"/></number>
                  <number key="month"><xsl:value-of select="number(substring($d, 5, 2))"/></number>
                  <number key="day"><xsl:value-of select="number(substring($d, 7, 2))"/></number>
                </xsl:when>
                <xsl:otherwise>
                  <number key="month"><xsl:value-of select="number(substring($d, 1, 2))"/></number>
                  <number key="day"><xsl:value-of select="number(substring($d, 3, 2))"/></number>
                </xsl:otherwise>
              </xsl:choose>
            </map>
          </map>
        </array>
      </xsl:for-each>
    </map>
  </xsl:template>
</xsl:stylesheet>
